"""Tests of gateway/delivery/."""
