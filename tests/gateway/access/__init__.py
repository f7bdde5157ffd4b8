"""Tests of gateway/access/."""
