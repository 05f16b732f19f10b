"""Configuration dataclasses, YAML loading, frames and spaces shared by every part of the stack."""
