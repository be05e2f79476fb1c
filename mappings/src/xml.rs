//! Shared quick-xml plumbing for the XML readers: a hardened reader
//! (no DTD, no external or custom entities, bounded text nodes), encoding
//! handling (UTF-8, UTF-16, ISO-8859-1) and value parsers (dates, decimals).
