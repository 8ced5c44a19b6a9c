"""How good a version is and what drives it, measured on its registration holdout: permutation
importance, partial dependence, classifier curves, residuals and performance by segment. Computed
once per version (at registration, or on first request for older versions) and stored with it."""
