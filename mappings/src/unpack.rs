//! Open gzip, zip, tar and tar.gz flows (nested once) under limits.
