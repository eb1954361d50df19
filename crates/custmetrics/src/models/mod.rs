//! Statistical models.
