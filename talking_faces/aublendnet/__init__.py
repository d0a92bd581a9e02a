"""AUBlendNet: the AU codebook (stage 1) and the stylised basis predictor (stage 2).

layers (shared blocks), codebook (stage 1), predictor (stage 2), checkpoints (official files),
bases (prediction and cache), data (AUBlendSet and split), train and distributed (training),
metrics and evaluate (MSE_S, MSE_M).
"""
