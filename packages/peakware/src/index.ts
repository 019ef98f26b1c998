/**
 * `peakware`: the SDK entry point. Subsystems are also importable alone through subpath
 * exports (`peakware/core`, `peakware/server`, ...), so a service that wants only one piece
 * loads only that piece.
 */
export * from './core/index.js';
