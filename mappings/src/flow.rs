//! One flow, from its stored bytes to documents with verdicts.
