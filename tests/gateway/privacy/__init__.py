"""Tests of gateway/privacy/."""
