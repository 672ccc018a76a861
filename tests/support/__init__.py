"""Test harness: a fake upstream speaking real wire formats, and servers run on loopback."""
