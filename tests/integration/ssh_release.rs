//! Integration tests: ssh_release.
