"""DenseNet (dense blocks of BN-ReLU-conv bottlenecks with concatenated features, transitions) at small widths by
default; ``FULL`` holds the keyword arguments of torchvision's DenseNet-121."""
from collections import OrderedDict

INPUT_SHAPE = (2, 3, 32, 32)

FULL = {"densenet121": dict(growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64, bn_size=4,
                            num_classes=1000)}
FULL_INPUT_SHAPE = (1, 3, 224, 224)


def build(nn, F, T, growth_rate=8, block_config=(3, 4), num_init_features=16, bn_size=2, num_classes=10):
    class DenseLayer(nn.Module):
        def __init__(self, num_input_features, drop_rate=0.1):
            super().__init__()
            self.norm1 = nn.BatchNorm2d(num_input_features)
            self.relu1 = nn.ReLU(inplace=True)
            self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)
            self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
            self.relu2 = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)
            self.drop_rate = drop_rate

        def forward(self, prev_features):
            concated = T.cat(prev_features, 1)
            bottleneck = self.conv1(self.relu1(self.norm1(concated)))
            new_features = self.conv2(self.relu2(self.norm2(bottleneck)))
            return F.dropout(new_features, p=self.drop_rate, training=self.training)

    class DenseBlock(nn.ModuleDict):
        def __init__(self, num_layers, num_input_features):
            super().__init__()
            for i in range(num_layers):
                self.add_module(f"denselayer{i + 1}", DenseLayer(num_input_features + i * growth_rate))

        def forward(self, init_features):
            features = [init_features]
            for name, layer in self.items():
                features.append(layer(features))
            return T.cat(features, 1)

    class Transition(nn.Sequential):
        def __init__(self, num_input_features, num_output_features):
            super().__init__()
            self.norm = nn.BatchNorm2d(num_input_features)
            self.relu = nn.ReLU(inplace=True)
            self.conv = nn.Conv2d(num_input_features, num_output_features, kernel_size=1, stride=1, bias=False)
            self.pool = nn.AvgPool2d(kernel_size=2, stride=2)

    class DenseNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(OrderedDict([
                ("conv0", nn.Conv2d(3, num_init_features, kernel_size=7, stride=2, padding=3, bias=False)),
                ("norm0", nn.BatchNorm2d(num_init_features)),
                ("relu0", nn.ReLU(inplace=True)),
                ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
            ]))
            num_features = num_init_features
            for i, num_layers in enumerate(block_config):
                self.features.add_module(f"denseblock{i + 1}", DenseBlock(num_layers, num_features))
                num_features = num_features + num_layers * growth_rate
                if i != len(block_config) - 1:
                    self.features.add_module(f"transition{i + 1}", Transition(num_features, num_features // 2))
                    num_features = num_features // 2
            self.features.add_module("norm5", nn.BatchNorm2d(num_features))
            self.classifier = nn.Linear(num_features, num_classes)

        def forward(self, x):
            features = self.features(x)
            out = F.relu(features, inplace=True)
            out = F.adaptive_avg_pool2d(out, (1, 1))
            out = T.flatten(out, 1)
            return self.classifier(out)

    return DenseNet()
