//! Imports run one way (issue 13, ARCHITECTURE.md): no crate of the
//! workspace may have modules importing each other in a circle. The
//! failure message lists every circle with the imports that close it
//! (`quai_test_support::imports`; its unit tests plant circles to prove it
//! finds them).

use quai_test_support::imports;

#[test]
fn no_import_circle_in_the_workspace() {
    imports::assert_no_circles(&[
        "mappings",
        "spool",
        "connectors",
        "test-support",
        "bench",
        "daemon",
    ]);
}
