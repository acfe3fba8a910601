"""ONNX export and its check, shared by the training scripts of the bundled models.

`models/mnist-edm/train.py` and `models/mnist-features/train.py` import this file from the
folder above them, so both export with the same exporter settings on PyTorch 1.13 (CPU, here)
and 2.x (CUDA, on a GPU machine) and verify their files the same way.
"""

import inspect

import numpy as np
import torch


def onnx_export(model, args, path, input_names, output_names, dynamic_axes, opset=17):
    """torch.onnx.export with the classic TorchScript exporter on every torch version."""
    kwargs = dict(input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes,
                  opset_version=opset, do_constant_folding=True)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # torch >= 2.5: keep the TorchScript-based exporter
    torch.onnx.export(model, args, path, **kwargs)


def verify_onnx(path, model, inputs, input_names, output_names):
    """Check the ONNX file and compare its outputs with the torch model on the same inputs.

    Uses onnxruntime when importable; otherwise only the onnx checker runs.
    Returns a dict of results (max abs diff per output, or a note).
    """
    import onnx

    m = onnx.load(path)
    onnx.checker.check_model(m)
    result = {"onnx_checker": "ok", "opset": int(m.opset_import[0].version),
              "ops": sorted({n.op_type for n in m.graph.node})}
    with torch.no_grad():
        ref = model(*inputs)
    ref = ref if isinstance(ref, (tuple, list)) else (ref,)
    try:
        import onnxruntime as ort
    except ImportError:
        result["runtime_check"] = "skipped (onnxruntime not importable)"
        print("verify: onnx checker ok; onnxruntime not importable, output comparison skipped")
        return result
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(output_names, {n: t.cpu().numpy() for n, t in zip(input_names, inputs)})
    diffs = {name: float(np.max(np.abs(r.cpu().numpy() - g)))
             for name, r, g in zip(output_names, ref, got)}
    result["max_abs_diff"] = diffs
    print(f"verify: onnxruntime {ort.__version__} vs torch max abs diff {diffs}")
    return result
