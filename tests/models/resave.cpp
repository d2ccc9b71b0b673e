// Load a TorchScript file and save it again with the libtorch this is built against, so that
// a model "saved by PyTorch 2.x" can be made where only PyTorch 2.x's libtorch (no Python
// torch 2.x) runs. docs/models.md has the build line.
#include <torch/script.h>
#include <torch/version.h>

#include <iostream>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: resave IN.pt OUT.pt\n";
        return 2;
    }
    try {
        auto m = torch::jit::load(argv[1]);
        m.save(argv[2]);
        std::cout << "saved " << argv[2] << " with libtorch " << TORCH_VERSION << "\n";
    } catch (const std::exception& e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
    return 0;
}
