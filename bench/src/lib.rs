//! quai's benchmark harness, as a library so its tests (and
//! `bench/tests/generator.rs`) use the very generator the benchmark runs.
//!
//! - [`gen`]: bulk flows with the exact verdicts expected (manifest);
//! - [`run`]: the scenarios, a real `quai run` child measured from outside.
//!
//! The `quai-bench` binary (`src/main.rs`) is only the command line.
//! Imports run one way: `run` uses `gen`, never the reverse.

pub mod gen;
pub mod run;
