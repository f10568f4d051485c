"""The ROS 2 nodes of talking_face_ros, one module per executable (``main()`` in each).

Kept apart from the rest of the package so that everything else imports without rclpy.
"""
