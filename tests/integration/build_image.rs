//! Integration tests: build_image.
