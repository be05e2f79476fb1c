//! Streaming, fsynced, content-addressed writes into the flow store.
