"""`rdfer app`: a local web page over `rdfer predict` and `rdfer audit` (docs/app.md).

A FastAPI server with one page of our own (static/index.html, app.js, app.css: no
framework, nothing fetched from the internet). Everything the page shows comes
from the library calls the commands use:

- predict.py: prediction jobs (uploads or a folder) run through
  `rdfer.inference.runner.predict_files`, one video at a time for progress;
- audit.py: an `rdfer audit` folder's label_issues.csv, clip previews, and the
  curator's decisions file (the CSV `rdfer audit --apply` reads), rewritten
  atomically on every click;
- work.py: the server's work folder; it writes and serves nothing outside it;
- server.py: the HTTP routes and `serve()`.
"""
