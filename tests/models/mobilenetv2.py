"""MobileNetV2 (inverted residuals with depthwise convolutions, ReLU6) at small widths by default; ``FULL``
holds the keyword arguments of torchvision's MobileNetV2 at width 1.0."""
INPUT_SHAPE = (2, 3, 32, 32)

SETTINGS = ((1, 8, 1, 1), (6, 12, 2, 2), (6, 16, 3, 2), (6, 24, 1, 1))  # t, c, n, s
FULL = {"mobilenetv2": dict(input_channel=32, last_channel=1280, num_classes=1000,
                            settings=((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                                      (6, 160, 3, 2), (6, 320, 1, 1)))}
FULL_INPUT_SHAPE = (1, 3, 224, 224)


def build(nn, F, T, input_channel=8, last_channel=64, settings=SETTINGS, num_classes=10):
    class ConvBNReLU(nn.Sequential):
        def __init__(self, in_planes, out_planes, kernel_size=3, stride=1, groups=1):
            padding = (kernel_size - 1) // 2
            super().__init__(
                nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, groups=groups, bias=False),
                nn.BatchNorm2d(out_planes),
                nn.ReLU6(inplace=True),
            )

    class InvertedResidual(nn.Module):
        def __init__(self, inp, oup, stride, expand_ratio):
            super().__init__()
            hidden_dim = int(round(inp * expand_ratio))
            self.use_res_connect = stride == 1 and inp == oup
            layers = []
            if expand_ratio != 1:
                layers.append(ConvBNReLU(inp, hidden_dim, kernel_size=1))
            layers.extend([
                ConvBNReLU(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),
                nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
                nn.BatchNorm2d(oup),
            ])
            self.conv = nn.Sequential(*layers)

        def forward(self, x):
            if self.use_res_connect:
                return x + self.conv(x)
            return self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            channels = input_channel
            features = [ConvBNReLU(3, channels, stride=2)]
            for t, c, n, s in settings:
                for i in range(n):
                    features.append(InvertedResidual(channels, c, s if i == 0 else 1, expand_ratio=t))
                    channels = c
            features.append(ConvBNReLU(channels, last_channel, kernel_size=1))
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last_channel, num_classes))

        def forward(self, x):
            x = self.features(x)
            x = F.adaptive_avg_pool2d(x, (1, 1))
            x = T.flatten(x, 1)
            return self.classifier(x)

    return MobileNetV2()
