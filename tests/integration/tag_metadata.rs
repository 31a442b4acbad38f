//! Integration tests: tag_metadata.
