#!/usr/bin/python3
"""Writes the models of the ONNX inference benchmark into bench/onnx/out/ (not committed: ResNet-50 is ~100 MB):
    <arch>.safetensors   seeded weights with non-trivial BN statistics, torchvision names (ResNet.ML loads them);
    <arch>.torch.onnx    PyTorch's own export of the same model (torch.onnx.export, opset 17, dynamic batch, eval mode).
resnet20 is the paper's CIFAR ResNet-20 (option A, 16/32/64 channels, 10 classes, 32x32, defined in
tools/fixtures/make_onnx_fixtures.py); resnet50 is torchvision's ResNet-50 (1000 classes, 224x224).
Run by bench/onnx/run.sh with Debian's /usr/bin/python3 (torch 1.13, torchvision 0.14)."""
import os, sys
import torch
import torchvision

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, '..', '..', 'tools', 'fixtures'))
import safetensors_io  # noqa: E402
from make_onnx_fixtures import CifarResNet  # noqa: E402

out = os.path.join(here, 'out')
os.makedirs(out, exist_ok=True)


def save(name, model, size, classes):
    model.train()
    with torch.no_grad():
        for _ in range(2):   # BN running statistics away from 0/1
            model(torch.randn(4, 3, min(size, 64), min(size, 64)))
    model.eval()
    safetensors_io.save(os.path.join(out, name + '.safetensors'), dict(model.state_dict()),
                        {'architecture': name, 'classes': str(classes)})
    torch.onnx.export(model, torch.randn(1, 3, size, size), os.path.join(out, name + '.torch.onnx'), opset_version=17,
                      input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}}, do_constant_folding=True)
    print(name, sum(p.numel() for p in model.parameters()), 'parameters ->', out)


torch.manual_seed(0)
save('resnet20', CifarResNet(3, 16, 10, 'A'), 32, 10)
save('resnet50', torchvision.models.resnet50(num_classes=1000), 224, 1000)
