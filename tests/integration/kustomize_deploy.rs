//! Integration tests: kustomize_deploy.
