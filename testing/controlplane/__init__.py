"""The test control plane: real Kubernetes components built from the Go module proxy
(build.sh), started and stopped by harness.py."""
