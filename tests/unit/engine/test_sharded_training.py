"""What sharded training (FSDP, ZeRO-3) needs of the model and the optimizer, without processes: the same forward
calls on every process (length chunking off where its chunk count follows the batch), and optimizer state for every
parameter in a checkpoint, equal to the state a parameter's first gradient finds."""

import torch
from torch import nn

from embedtrain.engine.checkpoint import fill_optimizer_state
from embedtrain.models.io import load_model
from embedtrain.modules.length_chunks import fix_forward_calls


def test_chunked_encoders_lose_length_chunking_and_packed_ones_keep_it(tiny_checkpoint) -> None:
    packed, chunked = load_model(tiny_checkpoint), load_model(tiny_checkpoint, attn_implementation="eager")
    assert packed.input_module.packing and not chunked.input_module.packing
    assert fix_forward_calls(packed) == []
    assert packed.input_module.length_chunking is not None
    assert fix_forward_calls(chunked) == ["Transformer"]
    assert chunked.input_module.length_chunking is None


def test_filled_optimizer_state_is_the_state_a_first_gradient_finds() -> None:
    torch.manual_seed(0)
    trained, unused = nn.Linear(3, 2), nn.Linear(3, 2)
    optimizer = torch.optim.AdamW([*trained.parameters(), *unused.parameters()], lr=0.1, weight_decay=0.01)
    trained(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    before = {name: value.clone() for name, value in optimizer.state[trained.weight].items()}
    weights = unused.weight.detach().clone()

    fill_optimizer_state(optimizer)

    assert all(parameter in optimizer.state for parameter in unused.parameters())
    assert all(torch.equal(value, before[name]) for name, value in optimizer.state[trained.weight].items())
    torch.testing.assert_close(unused.weight.detach(), weights, rtol=0, atol=0)  # no update (learning rate 0)
    assert unused.weight.grad is None and optimizer.param_groups[0]["lr"] == 0.1
    # The unused parameter's first real step from the filled state equals a step from a fresh optimizer.
    fresh = nn.Linear(3, 2)
    fresh.load_state_dict(unused.state_dict())
    reference = torch.optim.AdamW(fresh.parameters(), lr=0.1, weight_decay=0.01)
    for module, step in ((unused, optimizer), (fresh, reference)):
        module.weight.grad = torch.ones_like(module.weight)
        module.bias.grad = torch.ones_like(module.bias)
        step.step()
    torch.testing.assert_close(unused.weight.detach(), fresh.weight.detach())
