"""The FULL configurations of tests/models build the standard full-size networks: built on torch's meta device
(no memory, no arithmetic), each has the published parameter count and the expected output shape."""
import importlib

import pytest

from models import full_suite

torch = pytest.importorskip("torch")

# sum(p.numel()): torchvision's models (resnet18, resnet50, mobilenet_v2, shufflenet_v2_x1_0, squeezenet1_1,
# vgg11_bn, densenet121); GoogLeNet: torchvision's 6,624,904 plus 16 * sum(ch5x5red * ch5x5) for the paper's 5x5
# convolutions; AlexNet: the paper's grouped network (Caffe's bvlc_alexnet); UNet: milesial/Pytorch-UNet's
# UNet(3, 2, bilinear=False); DCGAN: the PyTorch tutorial's generator (nz=100, ngf=64, nc=3).
PUBLISHED = {
    "resnet18": (11_689_512, (1, 1000)),
    "resnet50": (25_557_032, (1, 1000)),
    "mobilenetv2": (3_504_872, (1, 1000)),
    "shufflenetv2": (2_278_604, (1, 1000)),
    "squeezenet": (1_235_496, (1, 1000)),
    "alexnet": (60_965_224, (1, 1000)),
    "vgg11": (132_868_840, (1, 1000)),
    "inception": (6_624_904 + 16 * (16 * 32 + 32 * 96 + 16 * 48 + 24 * 64 + 24 * 64 + 32 * 64 + 32 * 128
                                    + 32 * 128 + 48 * 128), (1, 1000)),
    "densenet121": (7_978_856, (1, 1000)),
    "unet": (31_037_698, (1, 2, 256, 256)),
    "dcgan": (3_576_704, (1, 3, 64, 64)),
}


def test_the_suite_is_the_designs():
    assert list(full_suite()) == list(PUBLISHED)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_full_configuration_is_the_standard_network(name):
    module_name, kwargs, input_shape = full_suite()[name]
    with torch.device("meta"):
        model = importlib.import_module(f"models.{module_name}").build(
            torch.nn, torch.nn.functional, torch, **kwargs).eval()
        y = model(torch.empty(input_shape))
    params, output_shape = PUBLISHED[name]
    assert sum(p.numel() for p in model.parameters()) == params
    assert tuple(y.shape) == output_shape
