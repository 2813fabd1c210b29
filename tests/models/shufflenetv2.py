"""ShuffleNetV2 (channel split, depthwise convolutions, channel shuffle) at small widths by default, its last
stage shuffling with ``nn.ChannelShuffle``; ``FULL`` holds the keyword arguments of torchvision's ShuffleNetV2 x1.0
(which shuffles with the reshape-transpose function in every stage)."""
INPUT_SHAPE = (2, 3, 32, 32)

FULL = {"shufflenetv2": dict(stages_repeats=(4, 8, 4), stages_out_channels=(24, 116, 232, 464, 1024),
                             shuffle_layer=False, num_classes=1000)}
FULL_INPUT_SHAPE = (1, 3, 224, 224)


def build(nn, F, T, stages_repeats=(2, 3, 2), stages_out_channels=(8, 16, 32, 48, 64), shuffle_layer=True,
          num_classes=10):
    def channel_shuffle(x, groups):
        batchsize, num_channels, height, width = x.shape          # torch: x.size()
        channels_per_group = num_channels // groups
        x = x.reshape(batchsize, groups, channels_per_group, height, width)  # torch: x.view(...)
        x = T.transpose(x, 1, 2)                                  # torch: torch.transpose(x, 1, 2).contiguous()
        return x.reshape(batchsize, -1, height, width)            # torch: x.view(batchsize, -1, height, width)

    def depthwise_conv(i, o, kernel_size, stride=1, padding=0, bias=False):
        return nn.Conv2d(i, o, kernel_size, stride, padding, bias=bias, groups=i)

    class InvertedResidual(nn.Module):
        def __init__(self, inp, oup, stride, shuffle_module=False):
            super().__init__()
            self.stride = stride
            branch_features = oup // 2
            if stride > 1:
                self.branch1 = nn.Sequential(
                    depthwise_conv(inp, inp, kernel_size=3, stride=stride, padding=1),
                    nn.BatchNorm2d(inp),
                    nn.Conv2d(inp, branch_features, kernel_size=1, stride=1, padding=0, bias=False),
                    nn.BatchNorm2d(branch_features),
                    nn.ReLU(inplace=True),
                )
            else:
                self.branch1 = nn.Sequential()
            self.branch2 = nn.Sequential(
                nn.Conv2d(inp if stride > 1 else branch_features, branch_features, 1, 1, 0, bias=False),
                nn.BatchNorm2d(branch_features),
                nn.ReLU(inplace=True),
                depthwise_conv(branch_features, branch_features, kernel_size=3, stride=stride, padding=1),
                nn.BatchNorm2d(branch_features),
                nn.Conv2d(branch_features, branch_features, 1, 1, 0, bias=False),
                nn.BatchNorm2d(branch_features),
                nn.ReLU(inplace=True),
            )
            self.shuffle = nn.ChannelShuffle(2) if shuffle_module else None  # else the function

        def forward(self, x):
            if self.stride == 1:
                x1, x2 = T.chunk(x, 2, dim=1)                     # torch: x.chunk(2, dim=1)
                out = T.cat((x1, self.branch2(x2)), dim=1)
            else:
                out = T.cat((self.branch1(x), self.branch2(x)), dim=1)
            if self.shuffle is not None:
                return self.shuffle(out)
            return channel_shuffle(out, 2)

    class ShuffleNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            input_channels = 3
            output_channels = stages_out_channels[0]
            self.conv1 = nn.Sequential(
                nn.Conv2d(input_channels, output_channels, 3, 2, 1, bias=False),
                nn.BatchNorm2d(output_channels),
                nn.ReLU(inplace=True),
            )
            input_channels = output_channels
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            for index, (repeats, output_channels) in enumerate(zip(stages_repeats, stages_out_channels[1:])):
                # with shuffle_layer, the last stage shuffles with the layer, the others with the function
                layer = shuffle_layer and index == len(stages_repeats) - 1
                seq = [InvertedResidual(input_channels, output_channels, 2, layer)]
                for _ in range(repeats - 1):
                    seq.append(InvertedResidual(output_channels, output_channels, 1, layer))
                setattr(self, f"stage{index + 2}", nn.Sequential(*seq))
                input_channels = output_channels
            output_channels = stages_out_channels[-1]
            self.conv5 = nn.Sequential(
                nn.Conv2d(input_channels, output_channels, 1, 1, 0, bias=False),
                nn.BatchNorm2d(output_channels),
                nn.ReLU(inplace=True),
            )
            self.fc = nn.Linear(output_channels, num_classes)

        def forward(self, x):
            x = self.maxpool(self.conv1(x))
            x = self.stage4(self.stage3(self.stage2(x)))
            x = self.conv5(x)
            x = T.mean(x, [2, 3])                                 # torch: x.mean([2, 3])
            return self.fc(x)

    return ShuffleNetV2()
