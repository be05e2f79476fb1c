//! EDIFACT INVOIC reader: a segment tokenizer and a message mapper.
