// Test-only reference: dlib's own face chips, the input dlib's ResNet face recogniser was
// evaluated on (dlib's pipeline: HOG frontal_face_detector on the RGB image, the 68-point
// shape predictor, get_face_chip_details(shape, 150, 0.25), extract_image_chips). Used to
// compare faceup's chips, landmarks and detector boxes with dlib's on LFW, and to run faceup's
// network on dlib's chips (bench/RESULTS.md, "LFW: dlib's own chips against faceup's"); its boxes
// and landmarks are what the keypoint box of face/detect.c was fitted to. Build and run:
//
//   g++ -O2 -std=c++14 -o dlib_chips tests/reference/dlib_chips.cpp $(pkg-config --cflags --libs dlib-1)
//   dlib_chips PREDICTOR.dat CHIPS.bin IMAGE... > chips.txt
//
// Per image, one line of chips.txt:
//   PATH FOUND  box: L T R B  parts: x0 y0 ... x67 y67  map: a b c d e f
// FOUND is 1 when HOG found a face (else 0 and the rest of the line is absent). The face is the
// detection whose centre is nearest the image centre (LFW's convention: the named person is
// the centred face). map is the image -> chip transform (get_mapping_to_chip), row-major 2x3:
// chip x = a x + b y + c, chip y = d x + e y + f (pixel-index coordinates).
// CHIPS.bin: per image, 150*150*3 bytes, RGB, row-major (zeros when no face was found).
#include <dlib/image_io.h>
#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_transforms.h>
#include <cstdio>
#include <vector>

static const int kChip = 150;

static dlib::rectangle centred_detection(const std::vector<dlib::rectangle> &dets, long width, long height) {
    dlib::rectangle best = dets[0];
    double best_d = 1e30;
    for (const auto &d : dets) {
        dlib::dpoint c = dlib::center(dlib::drectangle(d));
        double dist = (c - dlib::dpoint(width / 2.0, height / 2.0)).length();
        if (dist < best_d) best_d = dist, best = d;
    }
    return best;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: dlib_chips PREDICTOR.dat CHIPS.bin IMAGE...\n");
        return 2;
    }
    dlib::shape_predictor sp;
    dlib::deserialize(argv[1]) >> sp;
    dlib::frontal_face_detector detector = dlib::get_frontal_face_detector();
    std::FILE *chips = std::fopen(argv[2], "wb");
    if (!chips) {
        std::fprintf(stderr, "%s: cannot write\n", argv[2]);
        return 2;
    }
    std::vector<unsigned char> bytes(kChip * kChip * 3);
    for (int i = 3; i < argc; i++) {
        dlib::matrix<dlib::rgb_pixel> img;
        dlib::load_image(img, argv[i]);
        std::vector<dlib::rectangle> dets = detector(img);
        std::fill(bytes.begin(), bytes.end(), 0);
        if (dets.empty()) {
            std::printf("%s 0\n", argv[i]);
        } else {
            dlib::rectangle box = centred_detection(dets, img.nc(), img.nr());
            dlib::full_object_detection shape = sp(img, box);
            dlib::chip_details details = dlib::get_face_chip_details(shape, kChip, 0.25);
            dlib::matrix<dlib::rgb_pixel> chip;
            dlib::extract_image_chip(img, details, chip);
            for (long r = 0; r < kChip; r++)
                for (long c = 0; c < kChip; c++) {
                    unsigned char *p = &bytes[(r * kChip + c) * 3];
                    p[0] = chip(r, c).red, p[1] = chip(r, c).green, p[2] = chip(r, c).blue;
                }
            dlib::point_transform_affine m = dlib::get_mapping_to_chip(details);
            std::printf("%s 1 box: %ld %ld %ld %ld parts:", argv[i], box.left(), box.top(), box.right(), box.bottom());
            for (unsigned long p = 0; p < shape.num_parts(); p++) std::printf(" %ld %ld", shape.part(p).x(), shape.part(p).y());
            std::printf(" map: %.9g %.9g %.9g %.9g %.9g %.9g\n", m.get_m()(0, 0), m.get_m()(0, 1), m.get_b()(0),
                        m.get_m()(1, 0), m.get_m()(1, 1), m.get_b()(1));
        }
        if (std::fwrite(bytes.data(), 1, bytes.size(), chips) != bytes.size()) {
            std::fprintf(stderr, "%s: write failed\n", argv[2]);
            return 2;
        }
    }
    return std::fclose(chips) == 0 ? 0 : 2;
}
