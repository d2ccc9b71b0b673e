// The parts of a TORCH run on a GPU, timed apart, outside any server: the path the TORCH
// backend's shim takes (plugins/ai-backend-torch/cpp/shim.cpp: the input viewed in place and
// copied to the device, `forward` under InferenceMode, the output copied back), so that a
// difference between `run_model` and PyTorch in-process can be placed. Built and run by
// scripts/gpu-check on the GPU machine, against that machine's libtorch.
//
//   torch_parts MODEL.pt INPUT.f32 D0xD1x... BATCH THREADS CALLS
#include <torch/cuda.h>
#include <torch/script.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using Clock = std::chrono::steady_clock;

static double ms(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

int main(int argc, char** argv) {
    if (argc != 7) {
        std::fprintf(stderr, "usage: torch_parts MODEL.pt INPUT.f32 D0xD1x... BATCH THREADS CALLS\n");
        return 2;
    }
    std::vector<int64_t> shape;
    std::stringstream dims(argv[3]);
    for (std::string d; std::getline(dims, d, 'x');) shape.push_back(std::stoll(d));
    int64_t batch = std::stoll(argv[4]);
    at::set_num_threads(std::stoi(argv[5]));
    int calls = std::stoi(argv[6]);

    std::ifstream f(argv[2], std::ios::binary);
    f.seekg(0, std::ios::end);
    size_t bytes = static_cast<size_t>(f.tellg());
    f.seekg(0);
    std::vector<float> sample(bytes / sizeof(float));
    f.read(reinterpret_cast<char*>(sample.data()), static_cast<std::streamsize>(bytes));
    // The model's first sample repeated `batch` times, as the benchmark's inputs are.
    int64_t per = 1;
    for (size_t i = 1; i < shape.size(); ++i) per *= shape[i];
    shape[0] = batch;
    std::vector<float> input(static_cast<size_t>(per * batch));
    for (int64_t b = 0; b < batch; ++b) std::copy(sample.begin(), sample.begin() + per, input.begin() + b * per);

    auto dev = c10::Device(at::kCUDA, 0);
    auto module = torch::jit::load(argv[1], dev);
    std::vector<double> h2d, fwd, d2h, total;
    for (int i = 0; i < calls + 5; ++i) {
        c10::InferenceMode guard;
        auto t0 = Clock::now();
        auto view = at::from_blob(input.data(), shape, at::TensorOptions().dtype(at::kFloat));
        auto x = view.to(dev);
        torch::cuda::synchronize();
        auto t1 = Clock::now();
        auto y = module.forward({x}).toTensor();
        torch::cuda::synchronize();
        auto t2 = Clock::now();
        auto out = y.to(at::kCPU).contiguous();
        auto t3 = Clock::now();
        if (i >= 5) {
            h2d.push_back(ms(t0, t1));
            fwd.push_back(ms(t1, t2));
            d2h.push_back(ms(t2, t3));
            total.push_back(ms(t0, t3));
        }
    }
    std::printf("| %s | %lld | %s | %.3f | %.3f | %.3f | %.3f |\n", argv[1], static_cast<long long>(batch), argv[5],
                median(total), median(h2d), median(fwd), median(d2h));
    return 0;
}
