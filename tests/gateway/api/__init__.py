"""Tests of gateway/api/."""
