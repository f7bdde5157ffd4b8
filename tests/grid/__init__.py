"""Tests for grid/."""
