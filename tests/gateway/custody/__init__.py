"""Tests of gateway/custody/."""
