#!/usr/bin/env python3
# Usage: /usr/bin/python3 scripts/decompose_bn.py IN.onnx OUT.onnx
# Rewrites every BatchNormalization as Mul(scale) then Add(shift), the form an inference
# BatchNorm often takes in a frozen TensorFlow graph (batchnorm/mul, batchnorm/add) and so
# in its ONNX export. The model computes the same function.
import sys, numpy as np, onnx
from onnx import numpy_helper as nh, helper as h
m = onnx.load(sys.argv[1])
g = m.graph
inits = {i.name: nh.to_array(i) for i in g.initializer}
nodes = []
for n in g.node:
    if n.op_type != "BatchNormalization":
        nodes.append(n); continue
    eps = next((a.f for a in n.attribute if a.name == "epsilon"), 1e-5)
    gamma, beta, mean, var = (inits[x].astype(np.float64) for x in n.input[1:5])
    s = gamma / np.sqrt(var + eps); t = beta - mean * s
    c = len(s)
    sn, tn, mid = n.output[0] + "_s", n.output[0] + "_t", n.output[0] + "_mul"
    g.initializer.extend([nh.from_array(s.astype(np.float32).reshape(c, 1, 1), sn),
                          nh.from_array(t.astype(np.float32).reshape(1, c, 1, 1), tn)])
    nodes.append(h.make_node("Mul", [n.input[0], sn], [mid]))
    nodes.append(h.make_node("Add", [mid, tn], [n.output[0]]))
del g.node[:]
g.node.extend(nodes)
onnx.save(m, sys.argv[2])
