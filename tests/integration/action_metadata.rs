//! Integration tests: action_metadata.
