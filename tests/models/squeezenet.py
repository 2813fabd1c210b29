"""SqueezeNet 1.1 layout (fire modules, ceil-mode pooling, convolutional classifier) at small widths by default;
``FULL`` holds the keyword arguments of torchvision's SqueezeNet 1.1."""
INPUT_SHAPE = (2, 3, 47, 47)

# after the stem (conv, ReLU, max pool): fire modules (squeeze, expand 1x1, expand 3x3) and max pools ("M")
FIRES = ((4, 8, 8), (4, 8, 8), "M", (8, 16, 16), (8, 16, 16), "M", (12, 24, 24), (16, 32, 32))
FULL = {"squeezenet": dict(stem=64, num_classes=1000,
                           fires=((16, 64, 64), (16, 64, 64), "M", (32, 128, 128), (32, 128, 128), "M",
                                  (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256)))}
FULL_INPUT_SHAPE = (1, 3, 224, 224)


def build(nn, F, T, stem=16, fires=FIRES, num_classes=10):
    class Fire(nn.Module):
        def __init__(self, inplanes, squeeze_planes, expand1x1_planes, expand3x3_planes):
            super().__init__()
            self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
            self.squeeze_activation = nn.ReLU(inplace=True)
            self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
            self.expand1x1_activation = nn.ReLU(inplace=True)
            self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
            self.expand3x3_activation = nn.ReLU(inplace=True)

        def forward(self, x):
            x = self.squeeze_activation(self.squeeze(x))
            return T.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)

    class SqueezeNet(nn.Module):
        def __init__(self):
            super().__init__()
            layers = [nn.Conv2d(3, stem, kernel_size=3, stride=2), nn.ReLU(inplace=True),
                      nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)]
            channels = stem
            for fire in fires:
                if fire == "M":
                    layers.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True))
                else:
                    layers.append(Fire(channels, *fire))
                    channels = fire[1] + fire[2]
            self.features = nn.Sequential(*layers)
            final_conv = nn.Conv2d(channels, num_classes, kernel_size=1)
            self.classifier = nn.Sequential(
                nn.Dropout(p=0.5), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1)))
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    if m is final_conv:
                        nn.init.normal_(m.weight, mean=0.0, std=0.01)
                    else:
                        nn.init.kaiming_uniform_(m.weight)
                    if m.bias is not None:
                        nn.init.constant_(m.bias, 0)

        def forward(self, x):
            x = self.classifier(self.features(x))
            return T.flatten(x, 1)

    return SqueezeNet()
