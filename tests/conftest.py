"""Fixtures shared by several test files."""

import shutil

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module of many small ops, restored afterwards.

    On 2 cores shared by several workers, intra-op threads mostly spin: one thread made
    the model tests about 4x faster in wall and CPU time.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_dfew(tmp_path_factory):
    """A small synthetic benchmark in the official DFEW layout, with 20% noisy training labels.

    Rendered once per session and read by several modules: a test that changes it uses `data`, a copy.
    """
    from rdfer.synth import write_synthetic

    root = tmp_path_factory.mktemp("synth") / "dfew"
    write_synthetic(root, layout="dfew", clips=30, noise=0.2, seed=3, size=40, progress=False)
    return root


@pytest.fixture()
def data(tiny_dfew, tmp_path):
    """A private copy of `tiny_dfew` (tests corrupt it)."""
    root = tmp_path / "data"
    shutil.copytree(tiny_dfew, root)
    return root


# `make test-fast` (pytest -m "not slow") leaves out the tests marked here: they train models, start
# processes, render benchmarks or drive a browser. Listed are the tests that took 5 s or more in a full
# run on the shared 2-core machine (`pytest --durations`, with other work running: several times an
# idle machine's time), with that time. `make test` runs them all.
ALL = "every test of the module"
SLOW = {
    "test_app_browser.py": ALL,  # drives chromium
    "test_faults.py": ALL,  # every fault is injected into a real rdfer process (70 s in all, idle machine)
    "test_predict_onnx.py": {  # measured after the list above, in a run of the fast tier
        "test_export_of_a_trained_video_model",  # 40 s: trains, then exports
        "test_the_built_in_model_loads_without_torch_or_the_onnx_exporter",  # a fresh process
    },
    "test_python_api.py": {
        "test_the_python_api_page_runs_as_written",  # four real videos and photos, the default detector
    },
    "test_reference.py": {
        "test_the_docs_site_builds_strictly",  # a mkdocs process
    },
    "test_agreement_training.py": {
        "test_clip_predictions_agree_with_the_video_after_training",  # 9 s
    },
    "test_analysis.py": {
        "test_report_links_tables_and_figures",  # 13 s
    },
    "test_app.py": {
        "test_predict_uploads_show_label_trust_timeline_thumbnails_and_downloads",  # 9 s
    },
    "test_audit.py": {
        "test_audit_end_to_end_two_folds",  # 96 s
    },
    "test_clip.py": {
        "test_frozen_clip_trains_the_same_from_the_feature_cache",  # 13 s
        "test_clip_configs_train_with_their_own_encoder_learning_rate",  # 8 s
    },
    "test_configs.py": {
        "test_study_as_written_trains_on_tiny_data",  # 15 s (fast-tier run): trains
        "test_every_shipped_config_resolves_to_its_recorded_values",  # 10 s
        "test_paper_configs_warm_up_lr_and_reweighting_for_10_epochs",  # 8 s
    },
    "test_detector.py": {
        "test_mu_follows_an_apex_that_moves_from_clip_to_clip",  # 39 s
        "test_the_guide_alone_moves_the_window_onto_the_label_and_off_the_distractor",  # 7 s
    },
    "test_engine.py": {
        "test_resumed_run_equals_uninterrupted_run",  # 286 s
        "test_cv_reports_each_fold_and_keeps_finished_folds",  # 183 s
        "test_short_training_run_writes_every_file",  # 151 s
        "test_demo_pipeline_end_to_end_and_reuses_finished_work",  # 124 s
        "test_bench_train_prints_both_figures_and_their_ratio",  # 86 s
        "test_ddp_two_cpu_processes_cover_the_whole_test_set",  # 71 s
        "test_best_epoch_is_chosen_on_validation_never_on_test",  # trains twice
        "test_every_shipped_config_loads_and_names_a_registered_model",  # 24 s
    },
    "test_features.py": {
        "test_cached_and_uncached_runs_compute_the_same",  # 108 s
        "test_cache_is_checked_against_the_model",  # 10 s
    },
    "test_gpu_check.py": {
        "test_cpu_mode_measures_and_reports_each_figure_with_its_command",  # 59 s
    },
    "test_losses_ddp.py": {
        "test_ddp_ranks_get_their_slice_of_the_global_partition",  # 35 s
    },
    "test_models_registry.py": {
        "test_rdfer_models_lists_every_model_with_numbers",  # 24 s
        "test_forward_backward_and_checkpoint_round_trip",  # 17 s
    },
    "test_predict.py": {
        "test_bench_predict_prints_every_stage",  # 28 s
        "test_run_goes_on_after_broken_files_and_exits_non_zero",  # 25 s
        "test_csv_format_one_row_per_track_and_per_frame_and_face",  # 14 s
        "test_lean_mtcnn_finds_what_facenet_pytorch_mtcnn_finds",  # 12 s
        "test_default_detector_finds_a_face_turned_aside",  # 7 s
        "test_progress_to_a_file_keeps_the_per_file_line_and_draws_no_bar",  # 6 s
        "test_rotation_metadata_is_respected",  # 6 s
    },
    "test_predict_faces.py": {
        "test_small_faces_in_1080p_are_found_as_mtcnn_finds_them",  # 7 s
        "test_every_face_is_a_track_and_tracks_reset_at_cuts",  # 7 s
    },
    "test_predict_reliability.py": {
        "test_many_videos_at_once_give_the_same_results",  # 43 s
        "test_agreement_is_undefined_with_fewer_face_frames_than_clips",  # 38 s
        "test_full_disk_leaves_no_cut_off_file",  # 37 s
        "test_never_writes_over_inputs_or_files_it_did_not_create",  # 23 s
        "test_partly_decodable_video_is_ok_with_a_warning",  # 20 s
        "test_a_second_run_merges_into_the_tables",  # two predict runs, as the test it replaced (9 s)
    },
    "test_reliability_config.py": {
        "test_every_shipped_config_still_loads",  # 45 s
    },
    "test_reliability_data.py": {
        "test_batch_whose_every_clip_is_undecodable_is_not_yielded",  # 6 s
    },
    "test_reliability_guarantees.py": {
        "test_two_trainings_started_together_into_one_folder_never_mix",  # 106 s
        "test_features_on_a_full_disk_names_the_file_and_leaves_no_part",  # 57 s
        "test_a_checkpoint_on_a_full_disk_names_the_file_and_leaves_no_tmp",  # 28 s
        "test_cv_rerun_with_other_settings_is_refused_not_reported_as_finished",  # 25 s
        "test_a_feature_cache_of_clips_rewritten_since_is_refused",  # 25 s
        "test_a_loss_that_becomes_nan_stops_the_run_and_keeps_the_last_good_epoch",  # 24 s
        "test_a_non_utf8_file_name_neither_crashes_predict_nor_stops_the_batch",  # 17 s
        "test_a_second_run_into_a_held_folder_stops_at_once_naming_the_other_run",  # 9 s
        "test_features_out_never_replaces_what_it_reads",  # 8 s
    },
    "test_reliability_runs.py": {
        "test_relative_data_root_is_saved_absolute",  # 29 s
        "test_resume_of_a_run_killed_in_its_first_epoch_starts_it",  # 19 s
        "test_resume_applies_a_moved_data_root",  # 18 s
        "test_undecodable_train_clip_is_skipped_under_skip_bad",  # 13 s
        "test_eval_into_the_run_never_replaces_its_test_predictions",  # 13 s
        "test_eval_into_another_splits_folder_is_refused",  # 11 s
        "test_eval_corrupt_checkpoint_is_one_line",  # 11 s
        "test_killed_before_final_json_is_completed_on_resume",  # 11 s
        "test_undecodable_test_clip_never_loses_the_epoch",  # 10 s
        "test_resuming_a_finished_run_says_so",  # 10 s
        "test_eval_checks_out_before_the_pass",  # 9 s
        "test_resume_refuses_out_config_and_training_overrides",  # 9 s
        "test_eval_with_a_bad_split_leaves_no_folder",  # 9 s
        "test_best_pt_is_written_before_last_pt",  # 7 s
    },
    "test_study.py": {
        "test_tiny_study_writes_table_csv_and_plot_and_reuses_runs",  # 231 s
    },
    "test_synth.py": {
        "test_same_seed_same_bytes_whatever_the_worker_count",  # 33 s
        "test_pair_noise_flips_each_label_to_its_confusable_class",  # 9 s
        "test_ferv39k_layout_noise_only_in_train",  # 8 s
        "test_parallel_rendering_survives_a_parent_that_used_opencv_threads",  # 7 s
    },
    "test_tensorboard.py": {
        "test_training_curves_hold_every_metric_once_per_epoch_across_a_killed_and_resumed_run",  # 46 s
        "test_wandb_gets_the_scalars_and_histograms_and_a_resumed_run_keeps_its_id",  # 5 s
    },
}


def pytest_collection_modifyitems(items):
    for item in items:
        names = SLOW.get(item.path.name, ())
        if names == ALL or item.originalname in names:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def load_script():
    """`load_script("gpu_check")`: scripts/gpu_check.py imported as a module (scripts are no package)."""
    import importlib.util
    from pathlib import Path

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
