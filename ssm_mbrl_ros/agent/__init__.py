"""Behaviour learning in imagination: actor, critic, pure loss functions and the return normaliser."""
