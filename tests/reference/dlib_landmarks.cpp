// Test-only reference: dlib's own HOG face detector and 68-point shape predictor on real
// faces, for the C landmark test (tests/test_face_landmarks.c) and the blazeface-to-dlib box
// calibration. Built and run by tests/reference/dlib_reference.sh when libdlib-dev is present.
//
//   dlib_landmarks PREDICTOR.dat IMAGE... > reference.json
//
// Images are loaded as 8-bit gray by dlib (its (R+G+B)/3 conversion). For each image the
// largest HOG detection is used; images without a detection are listed with "box": null.
// Output: {"images": [{"path": ..., "box": [left, top, right, bottom], "parts": [x0, y0, ...],
//           "face_chip150": [6 numbers]}]}
// face_chip150: dlib's map from image to its 150x150 face chip with padding 0.25
// (get_face_chip_details on the 68-point shape, then get_mapping_to_chip), row-major 2x3.
#include <dlib/image_io.h>
#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_transforms.h>
#include <cstdio>

int main(int argc, char **argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: dlib_landmarks PREDICTOR.dat IMAGE...\n");
        return 2;
    }
    dlib::shape_predictor sp;
    dlib::deserialize(argv[1]) >> sp;
    dlib::frontal_face_detector detector = dlib::get_frontal_face_detector();
    std::printf("{\"images\": [\n");
    for (int i = 2; i < argc; i++) {
        dlib::array2d<unsigned char> img;
        dlib::load_image(img, argv[i]);
        std::vector<dlib::rectangle> dets = detector(img);
        std::printf("%s{\"path\": \"%s\", ", i > 2 ? ",\n" : "", argv[i]);
        if (dets.empty()) {
            std::printf("\"box\": null}");
            continue;
        }
        dlib::rectangle best = dets[0];
        for (const auto &d : dets)
            if (d.area() > best.area()) best = d;
        dlib::full_object_detection shape = sp(img, best);
        std::printf("\"box\": [%ld, %ld, %ld, %ld], \"parts\": [", best.left(), best.top(), best.right(), best.bottom());
        for (unsigned long p = 0; p < shape.num_parts(); p++)
            std::printf("%s%ld, %ld", p ? ", " : "", shape.part(p).x(), shape.part(p).y());
        dlib::point_transform_affine m = dlib::get_mapping_to_chip(dlib::get_face_chip_details(shape, 150, 0.25));
        std::printf("], \"face_chip150\": [%.9g, %.9g, %.9g, %.9g, %.9g, %.9g]}", m.get_m()(0, 0), m.get_m()(0, 1), m.get_b()(0),
                    m.get_m()(1, 0), m.get_m()(1, 1), m.get_b()(1));
    }
    std::printf("\n]}\n");
    return 0;
}
