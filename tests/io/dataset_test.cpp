// Data sets: NPY, IDX (plain and gzip) and image folders read the right values, slice
// and convert correctly, fit model inputs by the documented rule, and answer every
// corrupt or hostile file with rg::Error rather than a crash.
#include <gtest/gtest.h>
#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>

#include "io/dataset.h"
#include "io/file.h"
#include "io/idx.h"
#include "io/image.h"
#include "io/npy.h"

namespace rg::test {
namespace {

namespace fs = std::filesystem;

class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "rg_dataset_XXXXXX").string();
    ASSERT_NE(mkdtemp(&tmpl[0]), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (fs::path(dir_) / name).string(); }

  std::string dir_;
};

// An IDX image: magic, big-endian dims, then `payload` (already big-endian).
std::string idx_bytes(unsigned char type, const std::vector<uint32_t>& dims, const std::string& payload) {
  std::string s{'\0', '\0', (char)type, (char)dims.size()};
  for (uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) s += (char)((d >> shift) & 0xff);
  return s + payload;
}

std::string gzip(const std::string& raw) {
  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, raw.size()) + 64, '\0');
  zs.next_in = (Bytef*)raw.data();
  zs.avail_in = (uInt)raw.size();
  zs.next_out = (Bytef*)&out[0];
  zs.avail_out = (uInt)out.size();
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// n images of h x w uint8 with pixel (i, y, x) = (i * 7 + y * w + x) % 251.
std::string pixel_payload(int n, int h, int w) {
  std::string p;
  for (int i = 0; i < n; i++)
    for (int k = 0; k < h * w; k++) p += (char)((i * 7 + k) % 251);
  return p;
}

void expect_io_error(const std::function<void()>& f, const std::string& fragment = "") {
  try {
    f();
    ADD_FAILURE() << "expected rg::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::io) << e.what();
    if (!fragment.empty()) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  }
}

void expect_input_error(const std::function<void()>& f, const std::string& fragment = "") {
  try {
    f();
    ADD_FAILURE() << "expected rg::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_input) << e.what();
    if (!fragment.empty()) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  }
}

TEST_F(DatasetTest, NpyDatasetWithOffsetLimitAndU8ToF32) {
  Tensor x(DType::u8, {10, 28, 28});
  for (int64_t i = 0; i < x.numel(); i++) x.data<uint8_t>()[i] = (uint8_t)(i % 256);
  write_npy(path("x.npy"), x);
  auto d = open_dataset(path("x.npy"));
  EXPECT_EQ(d->size(), 10);
  EXPECT_EQ(d->sample_shape(), (Shape{28, 28}));
  EXPECT_EQ(d->dtype(), DType::u8);
  EXPECT_TRUE(d->labels().empty());

  auto s = slice_dataset(std::move(d), 4, 3);
  ASSERT_EQ(s->size(), 3);
  Tensor out(DType::f32, {3, 1, 28, 28});  // size-1 dims may differ from the samples
  s->read(0, 3, out);
  for (int64_t i = 0; i < out.numel(); i++)
    ASSERT_EQ(out.data<float>()[i], (float)((4 * 784 + i) % 256)) << i;  // raw, not normalised
  Tensor one(DType::f32, {1, 1, 28, 28});
  s->read(2, 1, one);
  EXPECT_EQ(one.data<float>()[5], (float)((6 * 784 + 5) % 256));

  expect_input_error([&] { s->read(2, 2, one); }, "outside");
  Tensor wrong(DType::f32, {3, 28, 27});
  expect_input_error([&] { s->read(0, 3, wrong); });

  // A limit past the end is clamped; an offset past the end is an error.
  EXPECT_EQ(slice_dataset(open_dataset(path("x.npy")), 8, 100)->size(), 2);
  EXPECT_EQ(slice_dataset(open_dataset(path("x.npy")), 0, -1)->size(), 10);
  expect_input_error([&] { slice_dataset(open_dataset(path("x.npy")), 10, -1); }, "--offset 10");
  expect_input_error([&] { slice_dataset(open_dataset(path("x.npy")), -1, -1); });
}

TEST_F(DatasetTest, LabelsFromNpyAndIdxSliceWithTheSamples) {
  write_npy(path("y64.npy"), Tensor::from_vector<int64_t>({5}, {3, 1, 4, 1, 5}));
  write_npy(path("y32.npy"), Tensor::from_vector<int32_t>({5, 1}, {3, 1, 4, 1, 5}));
  write_file(path("y.idx"), idx_bytes(0x08, {5}, std::string("\x03\x01\x04\x01\x05", 5)));
  write_file(path("y.idx.gz"), gzip(read_file(path("y.idx"))));
  std::vector<int64_t> want{3, 1, 4, 1, 5};
  for (const char* f : {"y64.npy", "y32.npy", "y.idx", "y.idx.gz"}) EXPECT_EQ(read_labels(path(f)), want) << f;

  write_npy(path("yf.npy"), Tensor::from_vector<float>({5}, {3, 1, 4, 1, 5}));
  expect_input_error([&] { read_labels(path("yf.npy")); }, "integers");
  write_npy(path("y2d.npy"), Tensor::from_vector<int64_t>({2, 2}, {1, 2, 3, 4}));
  expect_input_error([&] { read_labels(path("y2d.npy")); }, "[N]");

  write_npy(path("x.npy"), Tensor(DType::f32, {5, 2}, true));
  auto d = attach_labels(open_dataset(path("x.npy")), read_labels(path("y.idx")), path("y.idx"));
  auto s = slice_dataset(std::move(d), 1, 3);
  EXPECT_EQ(s->labels(), (std::vector<int64_t>{1, 4, 1}));
  expect_input_error([&] { attach_labels(open_dataset(path("x.npy")), {1, 2, 3}, "three.npy"); }, "3 labels");
}

TEST_F(DatasetTest, IdxPlainAndGzipAgree) {
  const int n = 6, h = 5, w = 4;
  std::string raw = idx_bytes(0x08, {n, h, w}, pixel_payload(n, h, w));
  write_file(path("images-idx3-ubyte"), raw);
  write_file(path("images-idx3-ubyte.gz"), gzip(raw));
  for (const char* f : {"images-idx3-ubyte", "images-idx3-ubyte.gz"}) {
    auto d = slice_dataset(open_dataset(path(f)), 2, 3);
    ASSERT_EQ(d->size(), 3) << f;
    EXPECT_EQ(d->sample_shape(), (Shape{h, w}));
    EXPECT_EQ(d->dtype(), DType::u8);
    Tensor out(DType::f32, {3, 1, h, w});
    d->read(0, 3, out);
    for (int i = 0; i < 3; i++)
      for (int k = 0; k < h * w; k++)
        ASSERT_EQ(out.data<float>()[i * h * w + k], (float)(((i + 2) * 7 + k) % 251)) << f;
  }
}

TEST_F(DatasetTest, IdxMultiByteTypesAreBigEndian) {
  // int16 {-2, 300}, int32 {70000}, float32 {1.5}, float64 {-0.25}
  Tensor i16 = parse_idx(idx_bytes(0x0B, {2}, std::string("\xFF\xFE\x01\x2C", 4)).data(), 12);
  EXPECT_EQ(i16.to_doubles(), (std::vector<double>{-2, 300}));
  std::string b = idx_bytes(0x0C, {1}, std::string("\x00\x01\x11\x70", 4));
  EXPECT_EQ(parse_idx(b.data(), b.size()).to_doubles(), (std::vector<double>{70000}));
  b = idx_bytes(0x0D, {1}, std::string("\x3F\xC0\x00\x00", 4));
  EXPECT_EQ(parse_idx(b.data(), b.size()).to_doubles(), (std::vector<double>{1.5}));
  b = idx_bytes(0x0E, {1}, std::string("\xBF\xD0\0\0\0\0\0\0", 8));
  EXPECT_EQ(parse_idx(b.data(), b.size()).to_doubles(), (std::vector<double>{-0.25}));
}

TEST_F(DatasetTest, CorruptIdxAndGzipAreIoErrors) {
  std::string good = idx_bytes(0x08, {4, 3, 3}, pixel_payload(4, 3, 3));
  std::string gz = gzip(good);
  auto bad = [&](const std::string& bytes, const std::string& fragment) {
    write_file(path("bad.idx"), bytes);
    expect_io_error([&] { open_dataset(path("bad.idx")); }, fragment);
  };
  bad(good.substr(0, good.size() - 1), "truncated");                   // data one byte short
  bad(good + "x", "header");                                           // trailing bytes
  bad(good.substr(0, 10), "truncated IDX header");                     // cut inside the dims
  bad(idx_bytes(0x07, {1}, "a"), "element type");                     // unknown type
  bad(idx_bytes(0x08, {}, ""), "dims");                               // zero dims
  bad(idx_bytes(0x08, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, "ab"), "truncated");  // huge, overflowing
  bad(gzip(idx_bytes(0x08, {0xFFFFFFFF, 0xFFFFFFFF}, "ab")), "truncated");       // huge inside gzip
  bad(gz.substr(0, gz.size() / 2), "truncated");                      // gzip cut short
  bad(gz.substr(0, 5), "");                                           // gzip header only
  bad(gzip(good + "more"), "more data");                              // gzip longer than declared
  bad(gzip(good.substr(0, good.size() - 3)), "truncated");            // gzip shorter than declared
  bad(gzip("\x93NUMPY not idx"), "not an IDX");
  std::string flipped = gz;
  flipped[flipped.size() - 6] ^= 0x55;  // inside the CRC-32 trailer
  bad(flipped, "gzip");
  bad("", "");
  bad("\x01\x02garbage", "not an NPY or IDX");
  expect_io_error([&] { open_dataset(path("absent.idx")); }, "absent.idx");
  expect_io_error([&] { read_labels(path("absent.idx")); }, "absent.idx");

  // Seeded random corruption of a gzip'd IDX file: never a crash, always parsed or io.
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; trial++) {
    std::string m = trial % 2 ? gz : good;
    int edits = 1 + (int)(rng() % 4);
    for (int e = 0; e < edits; e++) m[rng() % m.size()] = (char)(rng() % 256);
    if (trial % 5 == 0) m.resize(rng() % m.size());
    try {
      parse_idx(m.data(), m.size(), "fuzz");
    } catch (const Error& e) {
      ASSERT_EQ(e.code(), ErrorCode::io) << e.what();
    }
  }
}

TEST_F(DatasetTest, CheckDatasetFitsDropsSizeOneDims) {
  write_file(path("x.idx"), idx_bytes(0x08, {3, 28, 28}, pixel_payload(3, 28, 28)));
  auto d = open_dataset(path("x.idx"));
  EXPECT_NO_THROW(check_dataset_fits(*d, "input", {1, 28, 28}, DType::f32));
  EXPECT_NO_THROW(check_dataset_fits(*d, "input", {28, 28, 1}, DType::f32));
  EXPECT_EQ(fit_sample_shape(*d, "input", {1, 28, 28}, DType::f32), (Shape{1, 28, 28}));
  EXPECT_EQ(fit_sample_shape(*d, "input", {-1, -1, -1}, DType::f32), (Shape{1, 28, 28}));
  EXPECT_EQ(fit_sample_shape(*d, "input", {-1, 28, -1}, DType::f32), (Shape{1, 28, 28}));
  expect_input_error([&] { check_dataset_fits(*d, "input", {784}, DType::f32); }, "[28, 28]");
}

TEST_F(DatasetTest, CheckDatasetFitsRejectsOtherShapesAndLossyTypes) {
  write_file(path("x27.idx"), idx_bytes(0x08, {3, 27, 28}, pixel_payload(3, 27, 28)));
  auto d = open_dataset(path("x27.idx"));
  expect_input_error([&] { check_dataset_fits(*d, "input", {1, 28, 28}, DType::f32); }, "[27, 28]");
  write_npy(path("f.npy"), Tensor(DType::f32, {2, 1, 28, 28}, true));
  auto f = open_dataset(path("f.npy"));
  expect_input_error([&] { check_dataset_fits(*f, "input", {1, 28, 28}, DType::i64); }, "int64");
  EXPECT_NO_THROW(check_dataset_fits(*f, "input", {28, 28}, DType::f32));
  // The data's own layout wins when it fits dim for dim: HWC stays HWC.
  write_npy(path("hwc.npy"), Tensor(DType::u8, {2, 28, 28, 1}, true));
  EXPECT_EQ(fit_sample_shape(*open_dataset(path("hwc.npy")), "x", {-1, -1, -1}, DType::f32), (Shape{28, 28, 1}));
}

// --- image folders ---------------------------------------------------------------------

void write_png(const std::string& file, int w, int h, int format, const std::vector<uint8_t>& px) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = w;
  img.height = h;
  img.format = format;
  ASSERT_TRUE(png_image_write_to_file(&img, file.c_str(), 0, px.data(), 0, nullptr)) << img.message;
}

void write_jpeg(const std::string& file, int w, int h, const std::vector<uint8_t>& rgb) {
  FILE* f = std::fopen(file.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = w;
  c.image_height = h;
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 98, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(rgb.data()) + (size_t)c.next_scanline * w * 3;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::fclose(f);
}

TEST_F(DatasetTest, ImageFolderDecodesPngPixelsExactly) {
  fs::create_directories(path("imgs/b_dog"));
  fs::create_directories(path("imgs/a_cat"));
  fs::create_directories(path("imgs/.hidden"));
  // 3x2 RGB with distinct values, a grey one and an RGBA one (alpha is dropped).
  std::vector<uint8_t> rgb(18), grey(6), rgba(24);
  for (int i = 0; i < 18; i++) rgb[i] = (uint8_t)(10 * i + 1);
  for (int i = 0; i < 6; i++) grey[i] = (uint8_t)(40 * i);
  for (int i = 0; i < 24; i++) rgba[i] = (uint8_t)(i % 4 == 3 ? 0 : 200 - i);
  write_png(path("imgs/a_cat/1.png"), 3, 2, PNG_FORMAT_RGB, rgb);
  write_png(path("imgs/a_cat/2.PNG"), 3, 2, PNG_FORMAT_GRAY, grey);
  write_png(path("imgs/b_dog/x.png"), 3, 2, PNG_FORMAT_RGBA, rgba);
  write_file(path("imgs/b_dog/notes.txt"), "not an image");

  auto d = open_dataset(path("imgs"));
  ASSERT_EQ(d->size(), 3);
  EXPECT_EQ(d->sample_shape(), (Shape{3, 2, 3}));  // CHW
  EXPECT_EQ(d->dtype(), DType::f32);
  EXPECT_EQ(d->labels(), (std::vector<int64_t>{0, 0, 1}));
  EXPECT_EQ(d->class_names(), (std::vector<std::string>{"a_cat", "b_dog"}));
  Tensor out(DType::f32, {3, 3, 2, 3});
  d->read(0, 3, out);
  const float* p = out.data<float>();
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < 6; i++) {
      EXPECT_EQ(p[c * 6 + i], rgb[i * 3 + c]);            // sample 0: RGB
      EXPECT_EQ(p[18 + c * 6 + i], grey[i]);              // sample 1: grey expanded
      EXPECT_EQ(p[36 + c * 6 + i], rgba[i * 4 + c]);      // sample 2: alpha dropped
    }

  // HWC, BGR, grayscale and scale/mean/std.
  ImageOptions o;
  o.nhwc = true;
  o.bgr = true;
  o.scale = 0.5f;
  o.mean = {1, 2, 3};
  o.std = {2, 4, 8};
  auto h = open_dataset(path("imgs"), o);
  EXPECT_EQ(h->sample_shape(), (Shape{2, 3, 3}));
  Tensor one(DType::f32, {1, 2, 3, 3});
  h->read(0, 1, one);
  for (int i = 0; i < 6; i++)
    for (int c = 0; c < 3; c++)
      EXPECT_FLOAT_EQ(one.data<float>()[i * 3 + c], (rgb[i * 3 + (2 - c)] * 0.5f - o.mean[c]) / o.std[c]);
  ImageOptions g;
  g.grayscale = true;
  auto gd = open_dataset(path("imgs"), g);
  EXPECT_EQ(gd->sample_shape(), (Shape{1, 2, 3}));
  Tensor gt(DType::f32, {1, 1, 2, 3});
  gd->read(1, 1, gt);
  for (int i = 0; i < 6; i++) EXPECT_EQ(gt.data<float>()[i], grey[i]);  // grey stays exact
  g.mean = {1, 2, 3};
  expect_input_error([&] { open_dataset(path("imgs"), g); }, "--mean");
  // Image options on a file are a mistake, not silently ignored.
  write_npy(path("x.npy"), Tensor(DType::f32, {1, 2}, true));
  expect_input_error([&] { open_dataset(path("x.npy"), o); }, "image folders");
}

TEST_F(DatasetTest, ImageFolderResizesCropsAndNamesOddSizes) {
  fs::create_directories(path("imgs/a"));
  fs::create_directories(path("imgs/b"));
  // 4x4 grey columns 0,10,20,30: PIL's bilinear resize to 2x2 (antialiased, 8-bit) gives
  // 7 and 23 (7.14 and 22.86 before rounding).
  std::vector<uint8_t> cols(16);
  for (int i = 0; i < 16; i++) cols[i] = (uint8_t)(10 * (i % 4));
  write_png(path("imgs/a/cols.png"), 4, 4, PNG_FORMAT_GRAY, cols);
  std::vector<uint8_t> flat(40 * 24 * 3);
  for (size_t i = 0; i < flat.size(); i++) flat[i] = (uint8_t)(i % 3 == 0 ? 200 : i % 3 == 1 ? 100 : 50);
  write_jpeg(path("imgs/b/wide.jpg"), 40, 24, flat);

  ImageOptions r;
  r.resize = 2;
  r.grayscale = true;
  auto small = slice_dataset(open_dataset(path("imgs"), r), 0, 1);
  EXPECT_EQ(small->sample_shape(), (Shape{1, 2, 2}));
  Tensor s(DType::f32, {1, 1, 2, 2});
  small->read(0, 1, s);
  EXPECT_EQ(s.data<float>()[0], 7.f);
  EXPECT_EQ(s.data<float>()[1], 23.f);

  // Resize the shorter side to 8, centre-crop 6: both images end up 6x6.
  ImageOptions rc;
  rc.resize = 8;
  rc.crop = 6;
  auto d = open_dataset(path("imgs"), rc);
  EXPECT_EQ(d->sample_shape(), (Shape{3, 6, 6}));
  Tensor out(DType::f32, {2, 3, 6, 6});
  d->read(0, 2, out);
  for (int i = 0; i < 36; i++) {  // a flat colour stays flat through JPEG and resize
    EXPECT_NEAR(out.data<float>()[108 + i], 200, 3);
    EXPECT_NEAR(out.data<float>()[108 + 36 + i], 100, 3);
    EXPECT_NEAR(out.data<float>()[108 + 72 + i], 50, 3);
  }

  // Without resize/crop the JPEG differs in size from the first image: named in the error.
  auto raw = open_dataset(path("imgs"));
  Tensor two(DType::f32, {2, 3, 4, 4});
  expect_input_error([&] { raw->read(0, 2, two); }, "wide.jpg");
  rc.crop = 20;
  expect_input_error([&] { open_dataset(path("imgs"), rc); }, "smaller than --crop 20");
}

TEST_F(DatasetTest, CorruptImagesAreIoErrors) {
  fs::create_directories(path("imgs/a"));
  // Noise, so the compressed data is long enough to cut in the middle of the pixels.
  std::vector<uint8_t> px(64 * 64 * 3);
  std::mt19937 rng(3);
  for (auto& v : px) v = (uint8_t)(rng() % 256);
  write_png(path("imgs/a/good.png"), 64, 64, PNG_FORMAT_RGB, px);
  write_jpeg(path("imgs/a/good.jpg"), 64, 64, px);
  std::string png = read_file(path("imgs/a/good.png")), jpg = read_file(path("imgs/a/good.jpg"));
  write_file(path("imgs/a/trunc.png"), png.substr(0, png.size() / 2));
  write_file(path("imgs/a/trunc.jpg"), jpg.substr(0, jpg.size() / 2));
  write_file(path("imgs/a/text.png"), "plain text");
  auto d = open_dataset(path("imgs"));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(path("imgs/a"))) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  ASSERT_EQ(d->size(), 5);
  Tensor one(DType::f32, {1, 3, 64, 64});
  for (int64_t i = 0; i < d->size(); i++) {
    if (names[i].rfind("good", 0) == 0) {
      EXPECT_NO_THROW(d->read(i, 1, one)) << names[i];
      continue;
    }
    expect_io_error([&] { d->read(i, 1, one); }, names[i]);
  }
  for (double frac : {0.0, 0.01, 0.3, 0.9}) {
    expect_io_error([&] { decode_image(jpg.data(), (size_t)(frac * jpg.size()), "cut.jpg"); }, "cut.jpg");
    expect_io_error([&] { decode_image(png.data(), (size_t)(frac * png.size()), "cut.png"); }, "cut.png");
  }
  // Seeded random corruption: decoded or an io error, never a crash.
  for (int trial = 0; trial < 400; trial++) {
    std::string m = trial % 2 ? jpg : png;
    for (int e = 0; e < 1 + (int)(rng() % 6); e++) m[rng() % m.size()] = (char)(rng() % 256);
    try {
      decode_image(m.data(), m.size(), "fuzz");
    } catch (const Error& e) {
      ASSERT_EQ(e.code(), ErrorCode::io) << e.what();
    }
  }
  fs::create_directories(path("empty/a"));
  expect_input_error([&] { open_dataset(path("empty")); }, "no .png");
  fs::create_directories(path("flat"));
  expect_input_error([&] { open_dataset(path("flat")); }, "class sub-folders");
}

}  // namespace
}  // namespace rg::test
