"""A learned micro-expression recogniser (MMNet, Li et al., IJCAI 2022): network, inputs, aligned
onset/apex crops and a trained model's reading. Modules import torch; import them where needed."""
