/**
 * A config item's coordinates and who changes it: the config center's own vocabulary, which
 * other subsystems' server halves (drill, scale) speak through their config ports.
 */

/** One config item's coordinates. */
export interface ItemRef {
  app: string;
  group: string;
  key: string;
}

/** Who changes something, and from where (the config audit's fields). */
export interface Actor {
  author: string;
  source: string;
}
