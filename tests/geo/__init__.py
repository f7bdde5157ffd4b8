"""Tests for geo/."""
