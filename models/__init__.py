"""Backend-independent network builders (functions of ``sim``) and pure maths."""
