"""AUBlendNet: the AU codebook (stage 1) and the stylised basis predictor (stage 2)."""
