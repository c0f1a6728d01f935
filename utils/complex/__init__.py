"""Complex-valued layers and networks on native ``torch.complex64`` tensors."""
