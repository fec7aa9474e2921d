"""Every figure rdfer draws, as PNG (matplotlib, no display needed), in one package.

    base.py      writing a PNG (`save_png`), a figure that cannot be drawn (`Skipped`), a clip's frames
                 on disk (`FrameSource`); no matplotlib
    paper.py     the paper's figures from a run's saved files (Figs. 3-5, training curves, the window);
                 `rdfer report`, and the confusion image of every evaluated epoch (engine.run_log)
    audit.py     `rdfer audit`'s report: per class, suggested relabels, contact sheets
    study.py     `rdfer study`'s WAR and memorisation figure
    predict.py   `rdfer predict`'s timeline of each face (`VideoPrediction.plot()`)

Figures draw what they are given and import no job package (analysis, audit, engine,
inference): those import them. Nothing is imported here.
"""
