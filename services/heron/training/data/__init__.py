"""Training data: raw data sets -> KITTI folders -> folds, as TAO's data tools do.

Modules, each named for what it holds:

The KITTI format itself (`KittiObject`, `read_label_file`, `KittiDataset`) and `DataFormatError`
live in `heron.evaluation.kitti` / `heron.evaluation.errors`, below the services, because the
engine's INT8 accuracy gate reads KITTI labels too.

- `split`: TAO dataset_convert's partitions (random or by sequence) without TFRecords;
  `read_partitions` / `training_datasets` map a spec's `tfrecords_path` + `validation_fold`.
- `check`: `check_kitti`, every problem of a KITTI folder with file:line.
- `convert`: `convert_samples`, samples -> resized images and KITTI labels, with counts.
- readers, one per source format, each `from_<format>(input_dir, images_dir) -> Iterator[Sample]`:
  `voc`, `kaggle`, `mafa`, `fddb`, `wider`; `formats` lists them with their default class maps.
- `sample`: `Sample` and `Box`, what readers yield.

Heavy libraries (OpenCV, SciPy, PIL) are imported inside the functions that need them, so
`heron data --help` starts fast. See docs/data.md.
"""
