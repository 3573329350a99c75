"""The course's own networks, runnable and tested: `python -m training.lecture`.

`neurons.py` holds the McCulloch-Pitts neuron and the perceptron (AND and OR learnt, XOR
provably not); `network.py` the lecture's from-scratch NumPy network (tanh hidden layer,
sigmoid output, logistic loss, delta-rule gradients, batch gradient descent). Pure NumPy,
scikit-learn only for the lecture's data; no TensorFlow, and nothing from `service/` (the
network's weights leave as Dense layers, the format the service's runtime reads).
"""
