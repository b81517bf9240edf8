"""Comparisons shared by the parity and unit tests: gradients parameter by parameter, embeddings to a tolerance."""

import torch
from torch import nn

TOLERANCE = 1e-5


def gradients(module: nn.Module) -> dict[str, torch.Tensor | None]:
    return {name: parameter.grad for name, parameter in module.named_parameters()}


def assert_same_gradients(ours: nn.Module, reference: nn.Module) -> None:
    """Equal up to float32 round-off, tensor by tensor.

    The libraries write some losses with different but equivalent formulas (cross_entropy vs
    logsumexp, all pairs vs sorted suffix sums), so the last bits differ, and cancellation in the
    backward pass turns that into errors of up to ~1e-5 of a tensor's largest entry; each entry may
    differ by 1e-4 of that, with a floor of 1e-6 of the model's largest gradient for the tensors whose
    gradient is 0 in exact arithmetic (attention key biases; the last layer-norm bias under a
    distance that ignores a common shift), where round-off is all there is. A real difference in a
    loss shows up orders of magnitude above this.
    """
    assert_same_gradient_values(gradients(ours), gradients(reference))


def assert_same_gradient_values(actual: dict[str, torch.Tensor | None], expected: dict[str, torch.Tensor | None]) -> None:
    """`assert_same_gradients` on gradients already collected, by parameter name."""
    assert actual.keys() == expected.keys()
    largest = max(grad.abs().max().item() for grad in expected.values() if grad is not None)
    for name, grad in expected.items():
        if grad is None:  # only BERT's pooler, whose output no loss uses
            assert "pooler." in name and actual[name] is None, name
            continue
        atol = max(1e-4 * grad.abs().max().item(), 1e-6 * largest)
        torch.testing.assert_close(actual[name], grad, rtol=1e-5, atol=atol, msg=lambda message, name=name: f"{name}: {message}")


def assert_same_embeddings(expected: torch.Tensor, actual: torch.Tensor) -> None:
    expected, actual = expected.detach().float().cpu(), actual.detach().float().cpu()
    assert expected.shape == actual.shape
    difference = (expected - actual).abs().max().item()
    assert difference < TOLERANCE, f"max |delta| = {difference}"
