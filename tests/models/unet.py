"""UNet: double-conv encoder, decoder with skip concatenation, at small widths on an odd input size by default,
its four up-steps each upsampling another way; ``FULL`` holds the keyword arguments of the classic 64-base UNet
(with padded convolutions and batch norm, 2x2 transposed-convolution up-steps: milesial/Pytorch-UNet's
``UNet(3, 2, bilinear=False)``) on a 256x256 input."""
INPUT_SHAPE = (1, 3, 37, 41)

UP_MODES = ("pad", "output_size", "bilinear", "pad")
FULL = {"unet": dict(n_channels=3, n_classes=2, base=64, up_modes=("pad", "pad", "pad", "pad"))}
FULL_INPUT_SHAPE = (1, 3, 256, 256)


def build(nn, F, T, n_channels=3, n_classes=2, base=8, up_modes=UP_MODES):
    class DoubleConv(nn.Module):
        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.double_conv = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
                nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            )

        def forward(self, x):
            return self.double_conv(x)

    class Down(nn.Module):
        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

        def forward(self, x):
            return self.maxpool_conv(x)

    class Up(nn.Module):
        """Upsample x1 to the size of the skip x2 by one of three means, concatenate, double conv."""

        def __init__(self, in_channels, out_channels, mode="pad"):
            super().__init__()
            self.mode = mode
            if mode == "bilinear":
                self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                                        nn.Conv2d(in_channels, in_channels // 2, kernel_size=1))
            else:
                self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels)

        def forward(self, x1, x2):
            if self.mode == "output_size":
                x1 = self.up(x1, output_size=x2.shape)
            else:
                x1 = self.up(x1)
                diff_y = x2.shape[2] - x1.shape[2]                # torch: x2.size()[2] - x1.size()[2]
                diff_x = x2.shape[3] - x1.shape[3]
                x1 = F.pad(x1, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])
            x = T.cat([x2, x1], dim=1)
            return self.conv(x)

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.inc = DoubleConv(n_channels, base)
            self.down1 = Down(base, base * 2)
            self.down2 = Down(base * 2, base * 4)
            self.down3 = Down(base * 4, base * 8)
            self.down4 = Down(base * 8, base * 16)
            self.up1 = Up(base * 16, base * 8, up_modes[0])
            self.up2 = Up(base * 8, base * 4, up_modes[1])
            self.up3 = Up(base * 4, base * 2, up_modes[2])
            self.up4 = Up(base * 2, base, up_modes[3])
            self.outc = nn.Conv2d(base, n_classes, kernel_size=1)

        def forward(self, x):
            x1 = self.inc(x)
            x2 = self.down1(x1)
            x3 = self.down2(x2)
            x4 = self.down3(x3)
            x5 = self.down4(x4)
            x = self.up1(x5, x4)
            x = self.up2(x, x3)
            x = self.up3(x, x2)
            x = self.up4(x, x1)
            return self.outc(x)

    return UNet()
