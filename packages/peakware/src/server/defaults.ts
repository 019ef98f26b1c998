/** Defaults of `peak server`, in one place (the CLI reads them without loading the server). */

/** The default HTTP port of `peak server`. */
export const DEFAULT_PORT = 7420;
/** The default data folder, relative to the working directory. */
export const DEFAULT_DATA_DIR = '.peak';
