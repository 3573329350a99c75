"""`python -m training.lecture`: what each of the course's networks shows, in a few seconds."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from training.lecture import network as nn
from training.lecture.neurons import (
    AND,
    MP_AND,
    MP_NOT,
    MP_OR,
    OR,
    TWO_INPUTS,
    XOR,
    find_cycle,
    mp_xor,
    novikoff_bound,
    train_perceptron,
    truth_table,
)

MAX_EPOCHS = 1000
REPORT_EVERY = 100
# Hand-picked separators: Novikoff's bound holds for any of them (the best gives the least).
SEPARATORS = {"AND": (np.array([1.0, 1.0]), -1.5), "OR": (np.array([1.0, 1.0]), -0.5)}


def show_mcculloch_pitts() -> None:
    print("1. McCulloch-Pitts neuron (1943): fixed weights, a threshold, an inhibitory veto")
    gates = [
        ("AND: weights 1 1, threshold 2", MP_AND, 2),
        ("OR: weights 1 1, threshold 1", MP_OR, 2),
        ("NOT: threshold 0, its input inhibitory", MP_NOT, 1),
        ("XOR: (x1 and not x2) or (x2 and not x1), three neurons in two layers", mp_xor, 2),
    ]
    for title, gate, inputs in gates:
        print(f"   {title}")
        for line in truth_table(gate, inputs):
            print(f"      {line}")


def show_perceptron() -> None:
    print(f"\n2. Perceptron (Rosenblatt 1958): w += lr (y - y_hat) x, at most {MAX_EPOCHS} epochs")
    for name, target in (("AND", AND), ("OR", OR)):
        run = train_perceptron(TWO_INPUTS, target, MAX_EPOCHS)
        weights, bias = SEPARATORS[name]
        bound = novikoff_bound(TWO_INPUTS, target, weights, bias)
        print(
            f"   {name}: converged in {len(run.errors)} epochs, mistakes per epoch "
            f"{' '.join(map(str, run.errors))}; w = {run.weights.tolist()}, b = {run.bias}; "
            f"outputs {run.predict(TWO_INPUTS).tolist()} = {target.tolist()}"
        )
        print(
            f"      {sum(run.errors)} mistakes, within Novikoff's bound (R / gamma)^2 = {bound:.0f}"
        )
    run = train_perceptron(TWO_INPUTS, XOR, MAX_EPOCHS)
    print(
        f"   XOR: converged {run.converged}: no epoch without a mistake in {len(run.errors)}; "
        f"mistakes per epoch {' '.join(map(str, run.errors[:10]))} ... (never under "
        f"{min(run.errors)})"
    )
    cycle = find_cycle(run.path)
    if cycle:
        start, period = cycle
        w, b = run.path[start - 1, :-1].tolist(), run.path[start - 1, -1]
        mistakes = " ".join(map(str, run.errors[start : start + period]))
        print(
            f"      the weights cycle: epoch {start} ends at w = {w}, b = {b}, and so does "
            f"every {period} epochs after it, with mistakes {mistakes} in between"
            if period > 1
            else f"      from epoch {start} on every epoch ends at w = {w}, b = {b}, after "
            f"{mistakes} mistakes: the weights cycle"
        )
    print(
        "      XOR is not linearly separable (Minsky & Papert 1969): for every w, b the net\n"
        "      inputs w.x + b on (0,1) and (1,0) sum to w1 + w2 + 2b, and so do those on (0,0)\n"
        "      and (1,1); XOR needs the first sum > 0 >= the second. The perceptron converges\n"
        "      only on separable data (Novikoff 1962), so it never converges on XOR."
    )


def show_network() -> None:
    print(
        f"\n3. The lecture's network: {nn.DATA['n_features']} -> {nn.HIDDEN} tanh -> 1 sigmoid, "
        f"logistic loss, delta rule, full-batch gradient descent (lr {nn.LEARNING_RATE}, "
        f"{nn.EPOCHS} epochs)"
    )
    data = nn.load_data()
    arguments = ", ".join(f"{key}={value}" for key, value in nn.DATA.items())
    print(f"   make_classification({arguments})")
    print(f"   {len(data.x_train)} training and {len(data.x_test)} test samples, standardised")
    net = nn.init_network(data.x_train.shape[1], nn.HIDDEN, np.random.default_rng(0))
    losses = nn.train(net, data.x_train, data.y_train, nn.EPOCHS, nn.LEARNING_RATE)
    for epoch in range(0, nn.EPOCHS, REPORT_EVERY):
        print(f"   epoch {epoch:4d}  training loss {losses[epoch]:.4f}")
    final = nn.loss_of(net, data.x_train, data.y_train)
    print(f"   epoch {nn.EPOCHS:4d}  training loss {final:.4f}")
    print(
        f"   test accuracy {nn.accuracy(net, data.x_test, data.y_test):.3f} "
        f"(training {nn.accuracy(net, data.x_train, data.y_train):.3f})"
    )
    inputs, hidden, batch = data.x_train.shape[1], 3, 16
    small = nn.init_network(inputs, hidden, np.random.default_rng(1))
    count = sum(p.size for p in small.parameters())
    error = nn.gradient_check(small, data.x_train[:batch], data.y_train[:batch])
    print(
        f"   gradient check, {batch} samples, {inputs}-{hidden}-1 network, central differences: "
        f"max relative error {error:.1e} over {count} parameters"
    )
    print(f"   {service_agreement(net, data.x_test)}")


def service_agreement(net: nn.Network, x: np.ndarray) -> str:
    """The service's runtime on the same weights, as Dense layers. The lecture's modules
    never import the service (the two share a format, not code); this printout does, where
    the service is installed (the training image ships `training/` alone)."""
    try:
        from service.runtime import DenseLayer, DenseModel
    except ImportError:
        return "the service's runtime is not installed here (tests/training/ compare the two)"
    model = DenseModel(tuple(DenseLayer(*layer) for layer in nn.dense_layers(net)))
    served = model.predict(x.astype(np.float32))[:, 0]
    difference = np.abs(served - nn.forward(net, x)[1]).max()
    return (
        f"the service's runtime (DenseModel, float32) on the same weights: max |p difference| "
        f"{difference:.1e} over the {len(x)} test samples"
    )


def main() -> None:
    # Full-batch products on 4,000 x 20 are small: OpenBLAS's threads cost more than they
    # give, six times slower on two busy cores.
    with threadpool_limits(limits=1, user_api="blas"):
        show_mcculloch_pitts()
        show_perceptron()
        show_network()


if __name__ == "__main__":
    main()
