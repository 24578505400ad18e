"""The embedded default: real servers started on 127.0.0.1 for `make run` and the tests."""
